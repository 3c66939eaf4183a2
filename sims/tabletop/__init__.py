"""Tabletop manipulation tasks shared by every backend: scene description, tasks, the Gymnasium env and its world API."""
