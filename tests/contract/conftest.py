from tests.s3_server import s3_store_url

__all__ = ["s3_store_url"]
