"""Input of the batches API: the list's shape here, each entry's meaning in batches.services.batch_create."""

from __future__ import annotations

from rest_framework import serializers

from hlekkr.accounts.serializers import StrictSerializerMixin


class BatchCreateInput(StrictSerializerMixin, serializers.Serializer):
    # Entries are checked one by one in the service, so that one 400 can name every offending entry.
    items = serializers.ListField(child=serializers.JSONField(), allow_empty=True)
