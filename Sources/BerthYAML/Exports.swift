@_exported import BerthYAMLCore
