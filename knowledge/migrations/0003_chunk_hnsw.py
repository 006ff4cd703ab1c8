from django.db import migrations

# HNSW needs a fixed vector size, and chunks of different models have different sizes, so the
# index is per size: an expression index over rows of that size. Retrieval writes the same
# cast and predicate so the planner uses it. 384 = all-MiniLM-L6-v2, the default model.
CREATE = """
CREATE INDEX chunk_embedding_384_hnsw ON knowledge_chunk
USING hnsw ((embedding::vector(384)) vector_cosine_ops)
WHERE vector_dims(embedding) = 384
"""


class Migration(migrations.Migration):
    dependencies = [("knowledge", "0002_knowledge")]
    operations = [
        migrations.RunSQL(CREATE, "DROP INDEX chunk_embedding_384_hnsw"),
    ]
