from django.urls import path

from actions import views

# Mounted at /demo/shop/api/ by config.urls; every view answers 404 unless settings.DEMO_SHOP.
urlpatterns = [
    path("<str:public_key>/orders/<str:order_id>", views.demo_order_get, name="demo_shop_order"),
    path("<str:public_key>/refunds", views.demo_refund_start, name="demo_shop_refund"),
]
