"""`shmctl limits` and its subcommands as JSON, plain text and rich tables:
document.py    --json without -o: one document grouped by subject
table.py       the tables' rows and columns (-o, lsipc -g's names), plain, raw, export, JSON rows
terminal.py    the same as rich tables on a terminal
advice.py      limits set, hugepages and recommend
namespaces.py  --all-namespaces"""
from __future__ import annotations

from .. import Style, to_json
from .advice import (changes_dict, commands_text, pool_result_dict, recommendation_dict, recommendation_rich,
                     recommendation_text, sysctl_lines)
from .document import limits_dict, limits_json, pool_dict, resource_dict
from .namespaces import namespace_limits_dicts, namespace_limits_text
from .table import (ALL_COLUMNS, LIMIT_COLUMNS, POOL_COLUMNS, Choice, choose_columns, column_help, limit_rows,
                    limits_export, limits_rows_dict, limits_text, pools_text)
from .terminal import limits_rich

__all__ = ["Style", "to_json", "changes_dict", "commands_text", "pool_result_dict", "recommendation_dict",
           "recommendation_rich", "recommendation_text", "sysctl_lines", "limits_dict", "limits_json", "pool_dict",
           "resource_dict", "namespace_limits_dicts", "namespace_limits_text", "ALL_COLUMNS", "LIMIT_COLUMNS",
           "POOL_COLUMNS", "Choice", "choose_columns", "column_help", "limit_rows", "limits_export", "limits_rich",
           "limits_rows_dict", "limits_text", "pools_text"]
