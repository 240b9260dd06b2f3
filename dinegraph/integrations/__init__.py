"""Adapters to outside services (SMS, WeChat); the development ones never leave the host."""
