"""The mock QRM server's inside: domain rules, the store, the delivery engine, the API
handlers and report generation. Clients reach it only through `mock_qrm.app`, its face."""
