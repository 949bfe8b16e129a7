"""Admin pages for the question, document, place and tag models: taskops links refs to them.

Book and Country have none.
"""

from __future__ import annotations

from django.contrib import admin

from tests.testapp.models import Answer, Comment, Diner, Document, Place, Question, Restaurant, Tag


class AnswerInline(admin.TabularInline):
    model = Answer
    extra = 0
    fields = ["body", "status", "score"]


@admin.register(Question)
class QuestionAdmin(admin.ModelAdmin):
    list_display = ["title", "author", "created_at", "updated_at"]
    search_fields = ["title", "body"]
    inlines = [AnswerInline]
    filter_horizontal = ["followers"]


@admin.register(Answer)
class AnswerAdmin(admin.ModelAdmin):
    list_display = ["__str__", "question", "status", "score", "updated_at"]
    list_filter = ["status"]
    search_fields = ["body"]
    list_select_related = ["question"]


@admin.register(Comment)
class CommentAdmin(admin.ModelAdmin):
    list_display = ["__str__", "answer", "flagged", "created_at"]
    list_filter = ["flagged"]
    search_fields = ["body"]


admin.site.register(Document)
admin.site.register(Place)
admin.site.register(Restaurant)
admin.site.register(Diner)


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ["name", "id"]
