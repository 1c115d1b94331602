"""The files /docs serves: Swagger UI from the swagger-ui-bundle package (so
the page works offline) and our own init script. Nothing else is served."""

from __future__ import annotations

from pathlib import Path

import swagger_ui_bundle

SWAGGER_DIR = Path(swagger_ui_bundle.swagger_ui_path)
ASSETS = {
    "swagger-ui.css": SWAGGER_DIR / "swagger-ui.css",
    "swagger-ui-bundle.js": SWAGGER_DIR / "swagger-ui-bundle.js",
    "swagger-ui-standalone-preset.js": SWAGGER_DIR / "swagger-ui-standalone-preset.js",
    "favicon-32x32.png": SWAGGER_DIR / "favicon-32x32.png",
    "init.js": Path(__file__).with_name("init.js"),
}
