"""`python -m controller.api` rewrites the committed OpenAPI document."""

from controller.api.openapi import OPENAPI_PATH, render_openapi

OPENAPI_PATH.write_text(render_openapi())
print(OPENAPI_PATH)
