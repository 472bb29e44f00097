"""The demo: a small personal-assistant API that uses personal_assistant_db as a host app would.

``python -m examples.demo`` serves it on http://127.0.0.1:8000 (see ``__main__.py``);
``create_app()`` builds the Starlette app; ``load.py`` drives traffic at a running demo.
"""
