"""The only code that talks to Microsoft Graph (docs/architecture.md#graph-access).

Heavy SDK imports happen on first use.
"""

from shared.graph.client import Graph, GraphOptions, Page, get_graph, graph_options, tenant_graph
from shared.graph.costs import Cost, request_cost
from shared.graph.pacer import Budget, Pacer
from shared.graph.retry import RetryPolicy

__all__ = [
    "Budget",
    "Cost",
    "Graph",
    "GraphOptions",
    "Pacer",
    "Page",
    "RetryPolicy",
    "get_graph",
    "graph_options",
    "request_cost",
    "tenant_graph",
]
