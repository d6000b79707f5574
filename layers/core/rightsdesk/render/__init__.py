"""Rendering: translations (Babel), mail and MIME, web pages, and the templates and locales they use."""

from pathlib import Path

TEMPLATES_DIR = Path(__file__).parent / "templates"
