from django.urls import path

from videos import collection_views, views

app_name = "videos"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("account/", views.account, name="account"),
    path("team/", views.team, name="team"),
    path("collections/", collection_views.collection_list, name="collections"),
    path("collections/<int:pk>/", collection_views.collection_page, name="collection"),
    path("collections/<int:pk>/share/", collection_views.collection_share, name="collection_share"),
    path("collections/<int:pk>/delete/", collection_views.collection_delete, name="collection_delete"),
    path("collections/<int:pk>/remove/<int:video>/", collection_views.collection_remove, name="collection_remove"),
    path("<int:pk>/collect/", collection_views.collection_add, name="collect"),
    path("status/", views.statuses, name="statuses"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/status/", views.status, name="status"),
    path("<int:pk>/card/", views.card, name="card"),
    path("<int:pk>/cancel/", views.cancel, name="cancel"),
    path("<int:pk>/retry/", views.retry, name="retry"),
    path("<int:pk>/rerun/", views.rerun, name="rerun"),
    path("<int:pk>/share/", views.share, name="share"),
    path("<int:pk>/delete/", views.delete, name="delete"),
    path("<int:pk>/video.mp4", views.video_file, name="file"),
    path("<int:pk>/poster.jpg", views.poster, name="poster"),
    path("<int:pk>/image", views.input_image, name="input_image"),
    path("<int:pk>/clip", views.input_clip, name="input_clip"),
    path("<int:pk>/upscale/", views.upscale, name="upscale"),
]
