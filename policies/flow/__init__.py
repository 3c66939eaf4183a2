"""Flow matching policy (rectified flow): a velocity field over action chunks, integrated in a few Euler steps."""
