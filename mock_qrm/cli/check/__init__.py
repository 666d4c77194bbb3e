"""`mock-qrm check-receiver URL`: is this webhook receiver ready for QRM? (SPEC 8.5)

`checks` runs the checks against a mock through its own HTTP API and journal;
`report` writes the results as lines, JSON or JUnit XML; `command` is the CLI.
"""
