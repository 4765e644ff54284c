// PatchbayServer: the composition root: config, wiring, routes, lifecycle, logging and metrics bootstrap.
