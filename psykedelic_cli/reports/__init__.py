"""Reports over run documents: aggregation in NumPy, rendering as tables and charts.

Every report is a pure function of a list of run documents (psykedelic_cli/store/schema.py)
returning a :class:`Report` (tables + charts drawn on demand); none imports TensorFlow,
and matplotlib only when a chart is drawn.
"""

from psykedelic_cli.reports.eig_stats import eig_stats_report
from psykedelic_cli.reports.history import history_report
from psykedelic_cli.reports.per_layer import per_layer_report
from psykedelic_cli.reports.per_threshold import per_threshold_report
from psykedelic_cli.reports.performance import performance_report
from psykedelic_cli.reports.report import Chart, Report
from psykedelic_cli.reports.sensitivity import sensitivity_report
from psykedelic_cli.reports.set_analysis import set_analysis_report
from psykedelic_cli.reports.significance import significance_report
from psykedelic_cli.reports.tables import Cell, Table

__all__ = [
    "Cell",
    "Chart",
    "Report",
    "Table",
    "eig_stats_report",
    "history_report",
    "per_layer_report",
    "per_threshold_report",
    "performance_report",
    "sensitivity_report",
    "set_analysis_report",
    "significance_report",
]
