"""``python -m starter.devstack up|down|restart|status|logs|clean``."""

from starter.devstack.cli import app

if __name__ == "__main__":
    app()
