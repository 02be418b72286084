"""The constructs of the two stacks per environment: ``pipeline`` (``<env>``) and ``bootstrap``
(``bootstrap-<env>``), each built from one module per part. The only package that imports
the provider bindings (12-13 s), so every other part answers without them."""
