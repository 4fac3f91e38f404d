from django.urls import path

from videos import views

app_name = "videos"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("account/", views.account, name="account"),
    path("team/", views.team, name="team"),
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
