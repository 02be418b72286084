"""The effective-permission model: Google's predefined roles (``iam_roles/``), the grants read from
the synthesized stacks, and the API calls each identity's code path makes (``api_calls``)."""
