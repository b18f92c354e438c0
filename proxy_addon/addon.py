"""The script mitmproxy loads: ``mitmdump -s proxy_addon/addon.py --set linkwarn_...``.

mitmproxy runs a script without registering it as a module, so the addon
itself lives in `proxy_addon.interceptor`; this file only hands it over.
"""

from proxy_addon.api import LocalApi
from proxy_addon.interceptor import Linkwarn

linkwarn = Linkwarn()
addons = [linkwarn, LocalApi(linkwarn)]
