"""The web viewer: FastAPI app (app.py), page data (pages.py), rendering (render.py), security, DAG layout, export."""
