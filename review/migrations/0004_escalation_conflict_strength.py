"""Two reviewers on conflicting weighted evidence, not on the spread of raw probabilities (issue 12, docs/review.md).

The old `disagreement_spread` (max minus min detector probability) sent benign photos to two reviewers whenever one
weak "edited" detector said 0.9; it has no meaning under the new rule, so it is dropped rather than converted.
"""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('review', '0003_verdict_no_manipulation_found'),
    ]

    operations = [
        migrations.RemoveField(
            model_name='escalationpolicy',
            name='disagreement_spread',
        ),
        migrations.AddField(
            model_name='escalationpolicy',
            name='conflict_strength',
            field=models.FloatField(default=3.0, help_text='Two reviewers when weighted evidence (log-odds) for manipulation and for authenticity both reach this (docs/review.md).'),
        ),
    ]
