"""Notices: breach incidents and their deadlines, policy versions, and the pages and webhooks that carry them."""
