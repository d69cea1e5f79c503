"""The Dash app. Each page is a layout plus thin callbacks; the work lives in plain functions.

    app.py        create_app: shell + pages + the background-callback manager (manager.py, worker.py: Celery)
    shell.py      header, routing, URL <-> controls, app-level stores, server settings (request limit, heartbeats)
    ids.py        every component id; MODEL and DATA are the stores pages share (written by the Playground)
    params.py     one table of user values (control id, URL key, default, range) and LIMITS (sizes, bytes, jobs)
    state.py      PlaygroundConfig and Run (the shared model), read back from the browser only through checks
    tracing.py    traces within the app's region budget and memory cap; frames for the browser
    codec.py      torch objects <-> base64 text for stores, bounded on the way back
    wiring.py     callbacks with named outputs; background jobs (progress, quota, error path, lost-job watch)
    runner.py     inside a job: JobContext (slot, heartbeat, timeout, cancel), user-facing error messages
    quota.py      the registry of tabs and job slots (Redis with Celery, a disk cache otherwise)
    components.py layout builders; controls are built from their params.Param
    pages/        one module per page: layout() and register(app)
    jobs/         one module per page: its work as plain functions (progress, cancel)

Browser side: assets/splineviz-*.js (see splineviz-0-core.js).
"""
