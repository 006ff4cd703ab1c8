from django.db import migrations
from pgvector.django import VectorExtension


class Migration(migrations.Migration):
    """pgvector first: knowledge chunks store embeddings in `vector` columns."""

    initial = True
    dependencies = []
    operations = [VectorExtension()]
