"""MuJoCo backend: scenes built with ``mujoco.MjSpec`` from the robots in ``robots/``, rendered offscreen (EGL)."""
