"""botocore's EC2 service model, loaded once from the botocore package's data files."""

from __future__ import annotations

import functools

from botocore.loaders import Loader
from botocore.model import OperationModel, ServiceModel

API_VERSION = "2016-11-15"
XML_NAMESPACE = f"http://ec2.amazonaws.com/doc/{API_VERSION}/"


@functools.cache
def ec2_model() -> ServiceModel:
    """The EC2 model of API version 2016-11-15. Raises botocore's DataNotFoundError if the
    installed botocore lacks it (a broken install: the gateway must not start)."""
    data = Loader().load_service_model("ec2", "service-2", API_VERSION)
    return ServiceModel(data, service_name="ec2")


@functools.cache
def operation(name: str) -> OperationModel | None:
    """The model of the operation called `name` (the `Action`), or None if EC2 has none."""
    model = ec2_model()
    if name not in model.operation_names:
        return None
    return model.operation_model(name)
