"""`python -m mock_qrm` is `mock-qrm`."""

from mock_qrm.cli import main

main()
