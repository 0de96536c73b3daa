"""HTTP transport: the Litestar app factory and its routers."""
