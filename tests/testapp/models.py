"""Models the tests need: one per kind of primary key."""

from __future__ import annotations

import uuid

from django.db import models


class Book(models.Model):
    """Integer primary key."""

    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    pages = models.IntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.title


class Tag(models.Model):
    """UUID primary key."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=50)

    def __str__(self) -> str:
        return self.name


class Country(models.Model):
    """Character primary key."""

    code = models.CharField(max_length=2, primary_key=True)
    name = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.name
