def health():
    return Response().json_body

def create():
    pass
