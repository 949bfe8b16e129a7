"""Models the tests need.

Book, Tag, Country and Document: one per kind of primary key (Document's
text pk holds anything: spaces, slashes, colons). Question, Answer and
Comment: the seed article's models, all with a ``body``, related by foreign
keys and to users (the shapes a real project passes to its tasks). Place,
Restaurant and Diner: multi-table inheritance (a restaurant is a place, with
the same pk) and a proxy.
"""

from __future__ import annotations

import uuid

from django.conf import settings
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


class Document(models.Model):
    """A long character primary key."""

    path = models.CharField(max_length=200, primary_key=True)

    def __str__(self) -> str:
        return self.path


class Question(models.Model):
    title = models.CharField(max_length=200)
    body = models.TextField()
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="questions"
    )
    followers = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="followed_questions")
    summary = models.TextField(blank=True, help_text="Rebuilt by the rebuild_summary task.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.title


class Answer(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending moderation"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"

    question = models.ForeignKey(Question, on_delete=models.CASCADE, related_name="answers")
    body = models.TextField()
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="answers"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    score = models.IntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-score", "created_at"]

    def __str__(self) -> str:
        return f"Answer to {self.question_id}: {self.body[:40]}"


class Comment(models.Model):
    answer = models.ForeignKey(Answer, on_delete=models.CASCADE, related_name="comments")
    body = models.TextField()
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="comments"
    )
    flagged = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return self.body[:40]


class Place(models.Model):
    """A concrete parent (multi-table inheritance)."""

    name = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.name


class Restaurant(Place):
    """A child of ``Place``: its pk is its link to the place's row."""

    serves_pizza = models.BooleanField(default=False)


class Diner(Restaurant):
    """A proxy of ``Restaurant``."""

    class Meta:
        proxy = True
