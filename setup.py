"""What pyproject.toml cannot say: which folder each package comes from, and what colcon needs.

- One top-level import name. The card's folders (``robots/``, ``sims/``, ``policies/``, ``vla/``, ``rewards/``,
  ``real/``) stay at the repository root and install as ``ember.robots``, ``ember.sims``, ... (``package_dir``), so
  a wheel holds ``ember`` only and never overwrites another distribution's ``policies`` or ``robots``.
- colcon (ament_python needs a setup.py): installs the ROS 2 package index marker, package.xml, launch files and
  their YAML next to the console scripts, and keeps the setup() data colcon reads back parseable.

pip reads everything else (metadata, dependencies, entry points) from pyproject.toml.
"""

from glob import glob

from setuptools import find_packages, setup
from setuptools.dist import Distribution


def _literal_repr(spec):
    """`spec` (a packaging SpecifierSet) with a repr that `ast.literal_eval` reads back as its string.

    The type is a subclass of `spec`'s own, so setuptools still sees the value it parsed from pyproject.toml
    (its PEP 643 bookkeeping keeps Requires-Python static); copies and pickles turn back into the plain type."""
    base = type(spec)
    readable = type(
        base.__name__,
        (base,),
        {"__repr__": lambda self: repr(str(self)), "__reduce__": lambda self: (base, (str(self),))},
    )
    return readable(str(spec))


class _ColconReadableDistribution(Distribution):
    """Makes `python_requires` readable by colcon once pyproject.toml is applied.

    setuptools turns `requires-python` into a packaging `SpecifierSet`; colcon-python-setup-py reads a package's
    setup() back as `repr(dist.__dict__)` through `ast.literal_eval`, which cannot parse `<SpecifierSet(...)>`
    (`colcon build` then fails with "invalid syntax (<unknown>, line 1)"). Only the repr changes: the wheel's
    Requires-Python and everything pip sees stay as they are."""

    def parse_config_files(self, *args, **kwargs):
        super().parse_config_files(*args, **kwargs)
        for holder in (self, self.metadata):
            spec = getattr(holder, "python_requires", None)
            if spec is not None and not isinstance(spec, str):
                holder.python_requires = _literal_repr(spec)


SUBPACKAGE_FOLDERS = ("robots", "sims", "policies", "vla", "rewards", "real")
"""Root folders that install as ``ember.<folder>`` (the card's layout; docs/design.md, "Layers")."""


def _packages() -> tuple[list[str], dict[str, str]]:
    """Every package under ``ember`` and the folder each comes from (``ember.policies.rl`` <- ``policies/rl``)."""
    package_dir = {"ember": "ember", **{f"ember.{folder}": folder for folder in SUBPACKAGE_FOLDERS}}
    packages = [f"ember.{p}" for p in find_packages("ember")] + ["ember"]
    for folder in SUBPACKAGE_FOLDERS:
        packages += [f"ember.{folder}"] + [f"ember.{folder}.{p}" for p in find_packages(folder)]
    return sorted(packages), package_dir


PACKAGES, PACKAGE_DIR = _packages()

setup(
    distclass=_ColconReadableDistribution,
    packages=PACKAGES,
    package_dir=PACKAGE_DIR,
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/ember"]),
        ("share/ember", ["package.xml"]),
        ("share/ember/launch", glob("launch/*.launch.py")),
        ("share/ember/launch/config", glob("launch/config/*.yaml")),
    ],
)
