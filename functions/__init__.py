"""Azure Functions trigger adapters: one blueprint per capability. Parse the trigger, call one engine
function from `shared/`, shape the response. Heavy imports happen inside the functions (cold start)."""
