from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Organisation(_message.Message):
    __slots__ = ("id", "slug")
    ID_FIELD_NUMBER: _ClassVar[int]
    SLUG_FIELD_NUMBER: _ClassVar[int]
    id: int
    slug: str
    def __init__(self, id: _Optional[int] = ..., slug: _Optional[str] = ...) -> None: ...

class CreateOrganisationRequest(_message.Message):
    __slots__ = ("slug",)
    SLUG_FIELD_NUMBER: _ClassVar[int]
    slug: str
    def __init__(self, slug: _Optional[str] = ...) -> None: ...

class ListOrganisationsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListOrganisationsResponse(_message.Message):
    __slots__ = ("organisations",)
    ORGANISATIONS_FIELD_NUMBER: _ClassVar[int]
    organisations: _containers.RepeatedCompositeFieldContainer[Organisation]
    def __init__(self, organisations: _Optional[_Iterable[_Union[Organisation, _Mapping]]] = ...) -> None: ...

class Branch(_message.Message):
    __slots__ = ("name", "commit_hash", "is_default")
    NAME_FIELD_NUMBER: _ClassVar[int]
    COMMIT_HASH_FIELD_NUMBER: _ClassVar[int]
    IS_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    name: str
    commit_hash: str
    is_default: bool
    def __init__(self, name: _Optional[str] = ..., commit_hash: _Optional[str] = ..., is_default: _Optional[bool] = ...) -> None: ...

class Repository(_message.Message):
    __slots__ = ("id", "name", "description", "organisation_id", "source_url", "source_type", "is_mirror", "is_bare", "is_public", "local_path", "status", "error_message", "last_synced_at", "total_commits", "last_commit_hash", "default_branch", "branches", "organisation_slug", "credential", "sync_interval", "last_pushed_at", "last_event")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    ORGANISATION_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_URL_FIELD_NUMBER: _ClassVar[int]
    SOURCE_TYPE_FIELD_NUMBER: _ClassVar[int]
    IS_MIRROR_FIELD_NUMBER: _ClassVar[int]
    IS_BARE_FIELD_NUMBER: _ClassVar[int]
    IS_PUBLIC_FIELD_NUMBER: _ClassVar[int]
    LOCAL_PATH_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    LAST_SYNCED_AT_FIELD_NUMBER: _ClassVar[int]
    TOTAL_COMMITS_FIELD_NUMBER: _ClassVar[int]
    LAST_COMMIT_HASH_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_BRANCH_FIELD_NUMBER: _ClassVar[int]
    BRANCHES_FIELD_NUMBER: _ClassVar[int]
    ORGANISATION_SLUG_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    SYNC_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    LAST_PUSHED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_EVENT_FIELD_NUMBER: _ClassVar[int]
    id: int
    name: str
    description: str
    organisation_id: int
    source_url: str
    source_type: str
    is_mirror: bool
    is_bare: bool
    is_public: bool
    local_path: str
    status: str
    error_message: str
    last_synced_at: str
    total_commits: int
    last_commit_hash: str
    default_branch: str
    branches: _containers.RepeatedCompositeFieldContainer[Branch]
    organisation_slug: str
    credential: str
    sync_interval: int
    last_pushed_at: str
    last_event: str
    def __init__(self, id: _Optional[int] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., organisation_id: _Optional[int] = ..., source_url: _Optional[str] = ..., source_type: _Optional[str] = ..., is_mirror: _Optional[bool] = ..., is_bare: _Optional[bool] = ..., is_public: _Optional[bool] = ..., local_path: _Optional[str] = ..., status: _Optional[str] = ..., error_message: _Optional[str] = ..., last_synced_at: _Optional[str] = ..., total_commits: _Optional[int] = ..., last_commit_hash: _Optional[str] = ..., default_branch: _Optional[str] = ..., branches: _Optional[_Iterable[_Union[Branch, _Mapping]]] = ..., organisation_slug: _Optional[str] = ..., credential: _Optional[str] = ..., sync_interval: _Optional[int] = ..., last_pushed_at: _Optional[str] = ..., last_event: _Optional[str] = ...) -> None: ...

class CreateRepositoryRequest(_message.Message):
    __slots__ = ("name", "description", "source_url", "source_type", "organisation_id", "is_public", "is_mirror", "is_bare", "credential", "sync_interval")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    SOURCE_URL_FIELD_NUMBER: _ClassVar[int]
    SOURCE_TYPE_FIELD_NUMBER: _ClassVar[int]
    ORGANISATION_ID_FIELD_NUMBER: _ClassVar[int]
    IS_PUBLIC_FIELD_NUMBER: _ClassVar[int]
    IS_MIRROR_FIELD_NUMBER: _ClassVar[int]
    IS_BARE_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    SYNC_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    source_url: str
    source_type: str
    organisation_id: int
    is_public: bool
    is_mirror: bool
    is_bare: bool
    credential: str
    sync_interval: int
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., source_url: _Optional[str] = ..., source_type: _Optional[str] = ..., organisation_id: _Optional[int] = ..., is_public: _Optional[bool] = ..., is_mirror: _Optional[bool] = ..., is_bare: _Optional[bool] = ..., credential: _Optional[str] = ..., sync_interval: _Optional[int] = ...) -> None: ...

class RepositoryResponse(_message.Message):
    __slots__ = ("repository", "message")
    REPOSITORY_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    repository: Repository
    message: str
    def __init__(self, repository: _Optional[_Union[Repository, _Mapping]] = ..., message: _Optional[str] = ...) -> None: ...

class MigrateRepositoryRequest(_message.Message):
    __slots__ = ("repository_id", "source_url", "force")
    REPOSITORY_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_URL_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    repository_id: int
    source_url: str
    force: bool
    def __init__(self, repository_id: _Optional[int] = ..., source_url: _Optional[str] = ..., force: _Optional[bool] = ...) -> None: ...

class MigrationResponse(_message.Message):
    __slots__ = ("repository_id", "status", "message", "task_id")
    REPOSITORY_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    repository_id: int
    status: str
    message: str
    task_id: str
    def __init__(self, repository_id: _Optional[int] = ..., status: _Optional[str] = ..., message: _Optional[str] = ..., task_id: _Optional[str] = ...) -> None: ...

class SyncRepositoryRequest(_message.Message):
    __slots__ = ("repository_id",)
    REPOSITORY_ID_FIELD_NUMBER: _ClassVar[int]
    repository_id: int
    def __init__(self, repository_id: _Optional[int] = ...) -> None: ...

class SyncResponse(_message.Message):
    __slots__ = ("repository_id", "status", "commits_synced", "message", "task_id")
    REPOSITORY_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    COMMITS_SYNCED_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    repository_id: int
    status: str
    commits_synced: int
    message: str
    task_id: str
    def __init__(self, repository_id: _Optional[int] = ..., status: _Optional[str] = ..., commits_synced: _Optional[int] = ..., message: _Optional[str] = ..., task_id: _Optional[str] = ...) -> None: ...

class GetRepositoryRequest(_message.Message):
    __slots__ = ("repository_id",)
    REPOSITORY_ID_FIELD_NUMBER: _ClassVar[int]
    repository_id: int
    def __init__(self, repository_id: _Optional[int] = ...) -> None: ...

class ListRepositoriesRequest(_message.Message):
    __slots__ = ("organisation_id", "status", "page_size", "page_token")
    ORGANISATION_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    organisation_id: int
    status: str
    page_size: int
    page_token: str
    def __init__(self, organisation_id: _Optional[int] = ..., status: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListRepositoriesResponse(_message.Message):
    __slots__ = ("repositories", "next_page_token")
    REPOSITORIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    repositories: _containers.RepeatedCompositeFieldContainer[Repository]
    next_page_token: str
    def __init__(self, repositories: _Optional[_Iterable[_Union[Repository, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetSyncTaskRequest(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    def __init__(self, task_id: _Optional[str] = ...) -> None: ...

class SyncTask(_message.Message):
    __slots__ = ("task_id", "repository_id", "status", "commits_synced", "error_message", "attempts", "started_at", "finished_at", "kind")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    REPOSITORY_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    COMMITS_SYNCED_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    repository_id: int
    status: str
    commits_synced: int
    error_message: str
    attempts: int
    started_at: str
    finished_at: str
    kind: str
    def __init__(self, task_id: _Optional[str] = ..., repository_id: _Optional[int] = ..., status: _Optional[str] = ..., commits_synced: _Optional[int] = ..., error_message: _Optional[str] = ..., attempts: _Optional[int] = ..., started_at: _Optional[str] = ..., finished_at: _Optional[str] = ..., kind: _Optional[str] = ...) -> None: ...

class ArchiveRepositoryRequest(_message.Message):
    __slots__ = ("repository_id",)
    REPOSITORY_ID_FIELD_NUMBER: _ClassVar[int]
    repository_id: int
    def __init__(self, repository_id: _Optional[int] = ...) -> None: ...
