from .cart import Cart


def cart(request):
    return {"cart_count": Cart(request.session).count if hasattr(request, "session") else 0}
