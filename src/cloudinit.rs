//! cloud-init user data box generates for a machine (not landed yet).
