"""Reads a PROV-JSON document from stdin with the `prov` package (the reference Python PROV library,
Debian's python3-prov) and prints what it understood, as JSON: the namespaces, and every record
with its PROV type, identifier and attributes, each value tagged with the type the library gave it
(a qualified name resolved to its URI, a parsed xsd:dateTime, a typed literal, a plain JSON value).
test/helpers/prov-python.ts compares that with the document Ferry wrote."""

import datetime
import json
import sys

from prov.identifier import Identifier, QualifiedName
from prov.model import Literal, ProvDocument


def value(v):
    if isinstance(v, QualifiedName):
        return {"qname": str(v), "uri": v.uri}
    if isinstance(v, datetime.datetime):
        return {"dateTime": v.isoformat()}
    if isinstance(v, Literal):
        return {"literal": v.value, "datatype": str(v.datatype) if v.datatype else None, "lang": v.langtag}
    if isinstance(v, Identifier):
        return {"uri": v.uri}
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    return {"unknown": repr(v)}


def main():
    doc = ProvDocument.deserialize(content=sys.stdin.read(), format="json")
    records = []
    for record in doc.get_records():
        records.append(
            {
                "type": str(record.get_type()),
                "id": str(record.identifier) if record.identifier is not None else None,
                "attributes": [[str(name), value(v)] for name, v in record.attributes],
            }
        )
    namespaces = {ns.prefix: ns.uri for ns in doc.get_registered_namespaces()}
    json.dump({"namespaces": namespaces, "bundles": len(list(doc.bundles)), "records": records}, sys.stdout)


if __name__ == "__main__":
    main()
