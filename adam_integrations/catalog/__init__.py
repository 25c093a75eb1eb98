"""What models exist: the embedded offline defaults and the Qwen3 catalog.

Importing this package registers the catalog's names with ``core.resolver`` (the package
root imports it, so every entry point knows them).
"""

from adam_integrations.catalog.names import catalog_source
from adam_integrations.core.resolver import register_model_names

register_model_names(catalog_source)
