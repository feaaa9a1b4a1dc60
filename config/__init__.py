"""The catalogs (syringes, lines, needles, drugs; the simulator's tissues, plant and
scenarios) as package data, so an installed injectctl finds the same files a checkout does.

The files are data, not code: only their folder is exported here. The controller reads
them through ``controller.procedure.catalog``, the simulator through its own loaders."""

from pathlib import Path

CATALOG_DIR = Path(__file__).resolve().parent
