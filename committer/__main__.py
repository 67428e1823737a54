"""python -m committer"""

from committer.cli import main

main()
