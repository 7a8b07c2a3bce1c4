"""MediaItem.verdict holds the longer verdict `no_manipulation_found` (analysis 0008 relabels the rows)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('media', '0003_url_fetch'),
    ]

    operations = [
        migrations.AlterField(
            model_name='mediaitem',
            name='verdict',
            field=models.CharField(blank=True, max_length=32),
        ),
    ]
