"""The Dash app: pages under splineviz.web.pages, long work in splineviz.web.jobs, build with create_app()."""
