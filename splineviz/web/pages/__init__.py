"""One module per page, each with PATH, TITLE, URL_STATE, layout() and register(app)."""
