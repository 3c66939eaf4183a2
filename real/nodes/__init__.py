"""The rclpy nodes: the only modules that import rclpy at import time (load them lazily)."""
