"""Azure Functions entry point: creates the app and registers one blueprint per capability. Nothing else.

Importing this module must stay cheap — no msgraph, azure.identity or capability code — because Graph
webhooks must be answered within seconds of a cold start (docs/graph-contract.md#change-notifications).
"""

import azure.functions as func

from functions.attestation import bp as attestation
from functions.graph import bp as graph
from functions.health import bp as health
from functions.hr import bp as hr
from functions.invitations import bp as invitations
from functions.partners import bp as partners
from functions.reports import bp as reports
from functions.stale import bp as stale

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(attestation)
app.register_functions(graph)
app.register_functions(health)
app.register_functions(hr)
app.register_functions(invitations)
app.register_functions(partners)
app.register_functions(reports)
app.register_functions(stale)
