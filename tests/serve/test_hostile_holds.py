"""The hold forms as a careless or hostile client sends them: a form that does not say which hold it was
shown (it would deal with whatever is held now, never seen), and a held pull named by its remote commit."""

from __future__ import annotations

from committer.ops.kinds import _changed
from committer.sync.pullstate import PullRecord
from tests.serve.test_holds_http import Site, delete_five, site, tree  # noqa: F401 (site: a fixture)


def test_a_hold_form_that_does_not_say_which_hold_it_was_shown_changes_nothing(site: Site) -> None:  # noqa: F811
    """`seen` empty or missing, with the right CSRF token: refused (400), the deletions still held, nothing
    written or committed, from either button."""
    delete_five(site)
    head, hold = site.pipeline.head, site.pipeline.holds.hold
    for path in ("/holds/confirm", "/holds/put-back"):
        for fields in ({"csrf": site.access.csrf}, {"csrf": site.access.csrf, "seen": ""}):
            answer = site.post(path, fields, Origin=site.origin)
            assert answer.status == 400 and "reload the page" in answer.text, (path, fields, answer.status)
    assert site.pipeline.head == head and site.pipeline.holds.hold == hold
    assert "kb/n0.md" in tree(site) and not (site.layout.data / "kb/n0.md").exists()


def test_the_banner_names_a_held_pull_by_its_remote_commit_and_only_that_one_is_confirmed(
        site: Site) -> None:  # noqa: F811
    """A pull held for deleting too much has no local hold key: the form carries the remote commit it showed,
    and a page shown for another remote commit (or for no held pull) deals with nothing."""
    remote = "a" * 40
    record = PullRecord({"held": {"reason": "pull_delete", "paths": ["kb/n0.md"], "count": 9,
                                  "since": "2026-12-01T10:00:00Z", "remote_head": remote}})
    assert not _changed(site.pipeline, remote, record)
    assert _changed(site.pipeline, "b" * 40, record)
    assert _changed(site.pipeline, remote, PullRecord())
    site.push["pending_commits"] = 0
    from committer.serve import pages as pages_module

    text = pages_module.ENV.get_template("_holds.html").render(
        banner=pages_module.shown.banner({"held": record.held(), "push": site.push}, 0.0), csrf="t")
    assert f'name="seen" value="{remote}"' in text
