"""The `gitops` command line and the `gitops up` local stack: the only composition of the parts."""
