"""The dashboard: ``queries`` computes its figures, ``charts`` draws them,
``table`` orders the per-task table and builds the page's links.

Importing it costs nothing; ``DispatchAdmin.get_dashboard_context`` puts the
three together for each request.
"""
