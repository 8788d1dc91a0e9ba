//! The local box store: machine images by name, version and provider (not landed yet).
