"""What the server answers, as plain functions of the serving state: no FastAPI here.

`middleware.ServingMiddleware` calls them straight from ASGI (predictions, probes, metrics);
the FastAPI routes in `routes/` call the same functions and carry the OpenAPI document. Both
return a `state.Reply`.
"""
